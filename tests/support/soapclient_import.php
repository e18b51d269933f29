<?php
// Drives WSMailUpImport with PHP's SoapClient in WSDL mode, as the MailUp PHP
// integrations (Magento, Joomla) do: the Authentication header, GetNlLists and
// CreateGroup on SOAP 1.1 and 1.2, and a wrong password. Prints one JSON object.
//
// usage: php soapclient_import.php WSDL_URL USER PASSWORD LIST_ID LIST_GUID
[$script, $wsdl, $user, $password, $listId, $listGuid] = $argv;
$ns = 'http://ws.mailupnet.it/';
$results = [];
foreach ([SOAP_1_1 => 'soap11', SOAP_1_2 => 'soap12'] as $version => $name) {
    $client = new SoapClient($wsdl, ['soap_version' => $version, 'trace' => true, 'exceptions' => true, 'cache_wsdl' => WSDL_CACHE_NONE]);
    $client->__setSoapHeaders(new SoapHeader($ns, 'Authentication', ['User' => $user, 'Password' => $password, 'encType' => 'UTF-8']));
    $lists = $client->GetNlLists();
    $group = $client->CreateGroup(['idList' => (int) $listId, 'listGUID' => $listGuid, 'newGroupName' => "From PHP $name"]);
    $result = [
        'lists' => $lists->GetNlListsResult,
        'group' => $group->CreateGroupResult,
    ];
    $client->__setSoapHeaders(new SoapHeader($ns, 'Authentication', ['User' => $user, 'Password' => 'wrong']));
    try {
        $client->GetNlLists();
        $result['fault'] = null;
    } catch (SoapFault $fault) {
        $result['fault'] = $fault->getMessage();
        $result['fault_body'] = $client->__getLastResponse();
    }
    $results[$name] = $result;
}
echo json_encode($results), "\n";
