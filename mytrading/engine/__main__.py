from mytrading.process.startguard import gate

gate("engine")  # before the imports: a daemon that keeps failing at start exits at once

from mytrading.engine.daemon import EngineDaemon  # noqa: E402
from mytrading.process.shell import main  # noqa: E402

# risk's margin table (a strategy that sizes a set) and limits (the price band a
# protective stop is kept inside), as ``config check`` validated them
main(EngineDaemon, lambda config: {"margins": config.margins, "limits": config.risk.limits})
