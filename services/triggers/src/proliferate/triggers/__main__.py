from proliferate.triggers.bootstrap import main

main()
