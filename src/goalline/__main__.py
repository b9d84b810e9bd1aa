from goalline.cli import main

main()
