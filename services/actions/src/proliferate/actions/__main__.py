from proliferate.actions.bootstrap import main

main()
