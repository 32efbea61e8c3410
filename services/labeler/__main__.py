from services.common.service import main
from services.labeler.server import register
from services.labeler.worker import make_handler

main("labeler", register, make_handler)
