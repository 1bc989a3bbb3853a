from mytrading.process.prestart import begin

begin("engine")  # first: the start gate, the collector off (process/prestart.py)

from mytrading.engine.daemon import EngineDaemon  # noqa: E402
from mytrading.process.shell import main  # noqa: E402

# risk's margin table (a strategy that sizes a set) and limits (the price band a
# protective stop is kept inside), as ``config check`` validated them
main(EngineDaemon, lambda config: {"margins": config.margins, "limits": config.risk.limits})
