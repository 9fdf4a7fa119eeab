"""Routing, silences and inhibition: the pure decisions about where an alert goes and whether it is muted.

``matchers`` parses Alertmanager-style label matchers, ``tree`` walks the routing tree to the receivers
and groups an alert belongs to, ``silences`` decides whether a silence mutes an alert at a given time,
and ``inhibit`` decides whether another firing alert mutes it. None of them reads a clock or a store.
"""
