from services.common.service import main
from services.ingest.server import register
from services.ingest.worker import make_handler

main("ingest", register, make_handler)
