from scope3lib.cli import main

main()
