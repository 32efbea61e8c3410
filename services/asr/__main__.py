from services.asr.server import register
from services.asr.worker import make_handler
from services.common.service import main

main("asr", register, make_handler)
