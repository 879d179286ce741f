#!/bin/sh
# /usr/bin/tdc-milter: runs tdc-milter on the Node.js runtime the package carries (/usr/lib/tdc-milter/node).
exec /usr/lib/tdc-milter/node /usr/lib/tdc-milter/lib/main.js "$@"
