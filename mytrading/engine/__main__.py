from mytrading.daemon import main
from mytrading.engine.daemon import EngineDaemon

main(EngineDaemon)
