from services.common.service import main
from services.vad.server import register
from services.vad.worker import make_handler

main("vad", register, make_handler)
