"""Running and supervising processes: the base every daemon is built on (``base``), its
health and logs, one copy per checkout (``instance``, ``rundir``, ``startguard``), the
supervisor and the systemd unit (``supervise``, ``service``, ``crashwatch``), the status
table (``status``) and going live (``live``)."""
