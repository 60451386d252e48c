; error: 3:5: setting 'opt' given twice (first at 2:5)
set opt = 1
set opt = 0
