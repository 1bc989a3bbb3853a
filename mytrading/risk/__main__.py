from mytrading.process.startguard import gate

gate("risk")  # before the imports: a daemon that keeps failing at start exits at once

from mytrading.process.base import main  # noqa: E402
from mytrading.risk.daemon import RiskDaemon  # noqa: E402

main(RiskDaemon)
