from wdiff.cli import main

main()
