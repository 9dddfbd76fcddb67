"""Wire-level requests kazoo lacks (multiRead, raw ACL sessions, persistent recursive watches,
pipelined multi creates, overdue replies)."""
