from mytrading.process.startguard import gate

gate("monitor")  # before the imports: a daemon that keeps failing at start exits at once

from mytrading.monitor.daemon import MonitorDaemon  # noqa: E402
from mytrading.process.shell import main  # noqa: E402

main(MonitorDaemon, lambda config: {"alerts": config.alerts})
