from mytrading.daemon import main
from mytrading.router.daemon import RouterDaemon

main(RouterDaemon)
