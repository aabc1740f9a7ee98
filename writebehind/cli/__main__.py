from writebehind.cli import main

main()
