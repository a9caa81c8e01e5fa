from proliferate.auth.bootstrap import main

main()
