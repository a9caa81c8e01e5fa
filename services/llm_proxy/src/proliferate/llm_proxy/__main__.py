from proliferate.llm_proxy.bootstrap import main

main()
