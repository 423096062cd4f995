// Command fanseed is the one binary: serve, dev, seedbox, migrate and the operator's commands.
// It only wires: it reads the configuration and builds each package's values, so it may import
// every package of Fanseed's but the test helpers, and owns no table.
package main
