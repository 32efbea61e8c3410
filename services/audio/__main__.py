from services.audio.server import register
from services.audio.worker import make_handler
from services.common.service import main

main("audio", register, make_handler)
