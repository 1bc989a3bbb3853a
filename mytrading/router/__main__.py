from mytrading.process.startguard import gate

gate("router")  # before the imports: a daemon that keeps failing at start exits at once

from mytrading.process.shell import main  # noqa: E402
from mytrading.router.daemon import RouterDaemon  # noqa: E402

main(RouterDaemon)
