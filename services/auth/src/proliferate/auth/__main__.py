import sys

if sys.argv[1:2] == ["seed-dev"]:
    from proliferate.auth.dev import seed_dev_main

    seed_dev_main()
else:
    from proliferate.auth.bootstrap import main

    main()
