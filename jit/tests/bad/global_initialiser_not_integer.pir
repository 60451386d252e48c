; error: 2:18: expected an integer initialiser, found 'nil'
global @g: i64 = nil
