from superseller.cli.main import main

main()
