from mytrading.process.prestart import begin

begin("engine", hide_rich=False)  # first: the start gate, the collector off; rich kept
# for authors' strategies (process/prestart.py)

from mytrading.engine.daemon import EngineDaemon  # noqa: E402
from mytrading.process.shell import main  # noqa: E402

# risk's margin table (a strategy that sizes a set) and limits (the price band a
# protective stop is kept inside), as ``config check`` validated them
main(EngineDaemon, lambda config: {"margins": config.margins, "limits": config.risk.limits})
