from mytrading.daemon import main
from mytrading.monitor.daemon import MonitorDaemon

main(MonitorDaemon)
