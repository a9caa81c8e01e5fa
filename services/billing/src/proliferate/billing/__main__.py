from proliferate.billing.bootstrap import main

main()
