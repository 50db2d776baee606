mod p {}
