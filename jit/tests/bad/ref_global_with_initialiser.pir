; error: 2:16: a ref global starts nil and takes no initialiser
global @r: ref = 0
