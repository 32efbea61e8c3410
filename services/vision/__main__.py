from services.common.service import main
from services.vision.server import register
from services.vision.worker import make_handler

main("vision", register, make_handler)
