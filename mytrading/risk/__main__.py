from mytrading.process.prestart import begin

begin("risk")  # first: the start gate, the collector off (process/prestart.py)

from mytrading.process.shell import main  # noqa: E402
from mytrading.risk.daemon import RiskDaemon  # noqa: E402

# risk's files (limits, margins, charges) and the strategies' schedules, as ``config
# check`` validated them
main(RiskDaemon, lambda config: {"risk": config.risk, "schedules": config.schedules})
