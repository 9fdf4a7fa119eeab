"""Notifications: alerts, the outbox pipeline that delivers them, and the receivers that send them."""
