from mytrading.process.prestart import begin

begin("monitor")  # first: the start gate, the collector off (process/prestart.py)

from mytrading.monitor.daemon import MonitorDaemon  # noqa: E402
from mytrading.process.shell import main  # noqa: E402

main(MonitorDaemon, lambda config: {"alerts": config.alerts})
