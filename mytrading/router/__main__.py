from mytrading.process.prestart import begin

begin("router")  # first: the start gate, the collector off (process/prestart.py)

from mytrading.process.shell import main  # noqa: E402
from mytrading.router.daemon import RouterDaemon  # noqa: E402

main(RouterDaemon)
