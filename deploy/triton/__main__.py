from deploy.triton.server import main

main()
