// Asks a Kafka cluster what scripts/kafka.sh needs to know, through Kafka's own AdminClient
// (from the jars scripts/kafka.sh installs):
//
//   KafkaProbe ready BOOTSTRAP NODES TIMEOUT_S   waits until a metadata request lists NODES
//                                                brokers; exit 1 (saying what it saw) after TIMEOUT_S
//   KafkaProbe version BOOTSTRAP                 prints the cluster's finalized metadata.version and
//                                                group.version (the release the cluster runs as)
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.server.common.MetadataVersion;

public class KafkaProbe {
    public static void main(String[] args) throws Exception {
        if (args.length == 4 && args[0].equals("ready")) {
            System.exit(ready(args[1], Integer.parseInt(args[2]), Long.parseLong(args[3])));
        } else if (args.length == 2 && args[0].equals("version")) {
            System.exit(version(args[1]));
        }
        System.err.println("usage: KafkaProbe ready BOOTSTRAP NODES TIMEOUT_S | version BOOTSTRAP");
        System.exit(2);
    }

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "200");
        return Admin.create(p);
    }

    static int ready(String bootstrap, int nodes, long timeoutSeconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        String seen = "no answer";
        try (Admin admin = admin(bootstrap)) {
            while (System.nanoTime() < deadline) {
                try {
                    int n = admin.describeCluster().nodes().get(3, TimeUnit.SECONDS).size();
                    if (n >= nodes) return 0;
                    seen = n + " of " + nodes + " brokers";
                } catch (Exception e) {
                    seen = e.getClass().getSimpleName() + ": " + e.getMessage();
                }
                Thread.sleep(100);
            }
        }
        System.err.println("no metadata listing " + nodes + " brokers from " + bootstrap
            + " within " + timeoutSeconds + " s (last: " + seen + ")");
        return 1;
    }

    static int version(String bootstrap) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            Map<String, FinalizedVersionRange> features =
                admin.describeFeatures().featureMetadata().get(10, TimeUnit.SECONDS).finalizedFeatures();
            FinalizedVersionRange metadata = features.get("metadata.version");
            FinalizedVersionRange group = features.get("group.version");
            String release = metadata == null ? "unknown"
                : MetadataVersion.fromFeatureLevel(metadata.maxVersionLevel()).version();
            System.out.println("metadata.version " + release
                + (group == null ? "" : ", group.version " + group.maxVersionLevel()));
        }
        return 0;
    }
}
