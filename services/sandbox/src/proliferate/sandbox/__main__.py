from proliferate.sandbox.bootstrap import main

main()
