from mytrading.process.startguard import gate

gate("risk")  # before the imports: a daemon that keeps failing at start exits at once

from mytrading.process.shell import main  # noqa: E402
from mytrading.risk.daemon import RiskDaemon  # noqa: E402

# risk's files (limits, margins, charges) and the strategies' schedules, as ``config
# check`` validated them
main(RiskDaemon, lambda config: {"risk": config.risk, "schedules": config.schedules})
