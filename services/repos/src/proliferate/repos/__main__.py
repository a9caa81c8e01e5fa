from proliferate.repos.bootstrap import main

main()
