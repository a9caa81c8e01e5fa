from proliferate.gateway.bootstrap import main

main()
