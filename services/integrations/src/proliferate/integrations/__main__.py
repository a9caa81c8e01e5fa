from proliferate.integrations.bootstrap import main

main()
