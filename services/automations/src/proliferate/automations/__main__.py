from proliferate.automations.bootstrap import main

main()
