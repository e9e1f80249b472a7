from filesim.cli import main

main()
