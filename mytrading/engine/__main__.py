from mytrading.process.startguard import gate

gate("engine")  # before the imports: a daemon that keeps failing at start exits at once

from mytrading.engine.daemon import EngineDaemon  # noqa: E402
from mytrading.process.base import main  # noqa: E402

main(EngineDaemon)
