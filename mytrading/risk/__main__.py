from mytrading.daemon import main
from mytrading.risk.daemon import RiskDaemon

main(RiskDaemon)
