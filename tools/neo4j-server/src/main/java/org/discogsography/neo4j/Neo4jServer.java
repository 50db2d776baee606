package org.discogsography.neo4j;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;
import org.neo4j.kernel.internal.Version;

/**
 * Embedded Neo4j DBMS with the Bolt connector on, for local development, tests and CI.
 *
 * <p>Everything comes from the environment (defaults in brackets):
 *
 * <ul>
 *   <li>{@code NEO4J_HOME_DIR} the DBMS home: store, transaction logs and logs ({@code ./neo4j-home})
 *   <li>{@code NEO4J_BOLT_HOST} / {@code NEO4J_BOLT_PORT} the Bolt listen address ({@code 127.0.0.1} / {@code 7687})
 *   <li>{@code NEO4J_USERNAME} must be {@code neo4j}, the built-in admin user ({@code neo4j})
 *   <li>{@code NEO4J_PASSWORD} the password of user {@code neo4j}, at least 8 characters ({@code discogsography})
 *   <li>{@code NEO4J_PAGECACHE} page cache size ({@code 512m})
 *   <li>{@code NEO4J_TX_LOG_RETENTION} transaction logs kept besides the current one ({@code 1G size})
 * </ul>
 *
 * <p>Prints {@code NEO4J READY bolt://HOST:PORT version=X} once Bolt accepts the password, and shuts the
 * DBMS down cleanly on SIGTERM or SIGINT.
 */
public final class Neo4jServer {
    private Neo4jServer() {}

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }

    public static void main(String[] args) throws Exception {
        long started = System.nanoTime();
        Path home = Path.of(env("NEO4J_HOME_DIR", "neo4j-home")).toAbsolutePath();
        String host = env("NEO4J_BOLT_HOST", "127.0.0.1");
        int port = Integer.parseInt(env("NEO4J_BOLT_PORT", "7687"));
        String user = env("NEO4J_USERNAME", "neo4j");
        String password = env("NEO4J_PASSWORD", "discogsography");
        String pagecache = env("NEO4J_PAGECACHE", "512m");
        // Neo4j keeps two days of transaction logs by default: tens of GB after a few loads of
        // a large dump. A local server needs them only for recovery, so keep about 1 GB.
        String txLogRetention = env("NEO4J_TX_LOG_RETENTION", "1G size");

        if (!user.equals("neo4j")) {
            fail("NEO4J_USERNAME must be 'neo4j' (the built-in admin user), got '" + user + "'");
        }
        if (password.length() < 8) {
            fail("NEO4J_PASSWORD must have at least 8 characters (Neo4j's minimum)");
        }
        Files.createDirectories(home);

        DatabaseManagementService dbms;
        try {
            dbms =
                    new DatabaseManagementServiceBuilder(home)
                            .setConfig(BoltConnector.enabled, true)
                            .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
                            .setConfig(GraphDatabaseSettings.default_listen_address, new SocketAddress(host))
                            .setConfig(GraphDatabaseSettings.auth_enabled, true)
                            .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.parse(pagecache))
                            .setConfig(GraphDatabaseSettings.udc_enabled, false)
                            .setConfig(GraphDatabaseSettings.keep_logical_logs, txLogRetention)
                            .build();
        } catch (RuntimeException e) {
            e.printStackTrace();
            fail("could not start the DBMS in " + home + ": " + e);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime()
                .addShutdownHook(
                        new Thread(
                                () -> {
                                    System.out.println("NEO4J STOPPING");
                                    dbms.shutdown();
                                    System.out.println("NEO4J STOPPED");
                                    stopped.countDown();
                                },
                                "neo4j-shutdown"));

        setPassword(dbms.database("system"), home, user, password);
        String version = Version.getNeo4jVersion();

        long millis = (System.nanoTime() - started) / 1_000_000;
        System.out.printf(
                "NEO4J READY bolt://%s:%d version=%s started_in_ms=%d home=%s%n",
                host, port, version, millis, home);
        System.out.flush();
        stopped.await();
    }

    /**
     * Sets the password of {@code user}, unless the marker file in the store ({@code home/data}) says it
     * was already set to this password (which spares a Cypher statement, and its planning, on every later
     * start). The marker lives inside the store so that a store deleted to start afresh, whose fresh
     * system database knows only the default password, gets the password set again.
     */
    private static void setPassword(GraphDatabaseService system, Path home, String user, String password)
            throws Exception {
        Path marker = home.resolve("data").resolve("password.sha256");
        String digest =
                HexFormat.of()
                        .formatHex(
                                MessageDigest.getInstance("SHA-256")
                                        .digest((user + ":" + password).getBytes(StandardCharsets.UTF_8)));
        if (Files.exists(marker) && Files.readString(marker).trim().equals(digest)) {
            return;
        }
        try {
            system.executeTransactionally(
                    "ALTER USER " + user + " SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        } catch (RuntimeException e) {
            // Neo4j refuses to "change" a password to the one the user already has: nothing to do.
            if (!String.valueOf(e.getMessage()).contains("cannot be the same")) {
                throw e;
            }
        }
        Files.writeString(marker, digest + "\n");
    }

    private static void fail(String message) {
        System.err.println("NEO4J FAILED " + message);
        System.exit(1);
    }
}
