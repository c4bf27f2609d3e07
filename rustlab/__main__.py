from rustlab.cli import main

main()
