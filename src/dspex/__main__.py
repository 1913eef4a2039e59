from dspex.cli import main

main()
