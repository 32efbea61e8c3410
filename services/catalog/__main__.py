from services.catalog.server import register
from services.catalog.worker import make_handler
from services.common.service import main

main("catalog", register, make_handler)
