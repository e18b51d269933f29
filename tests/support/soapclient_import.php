<?php
// Drives WSMailUpImport with PHP's SoapClient in WSDL mode, as the MailUp PHP
// integrations (Magento, Joomla) do: the Authentication header, GetNlLists and
// CreateGroup on SOAP 1.1 and 1.2, and a wrong password; then an import
// (NewImportProcess, StartProcess, GetProcessDetails until done) the way the
// Magento module syncs customers. Prints one JSON object.
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
$client = new SoapClient($wsdl, ['soap_version' => SOAP_1_1, 'exceptions' => true, 'cache_wsdl' => WSDL_CACHE_NONE]);
$client->__setSoapHeaders(new SoapHeader($ns, 'Authentication', ['User' => $user, 'Password' => $password, 'encType' => 'UTF-8']));
$list = ['idList' => (int) $listId, 'listGUID' => $listGuid];
$document = '<subscribers>'
    . '<subscriber email="php1@example.com" Prefix="" Number="393332000001" Name=""><campo1><![CDATA[Pía]]></campo1></subscriber>'
    . '<subscriber email="zeep2@example.com"><campo3>from PHP</campo3></subscriber>'
    . '</subscribers>';
$created = $client->NewImportProcess($list + [
    'xmlDoc' => $document, 'idGroups' => '', 'importType' => 3, 'mobileInputType' => 1,
    'asPending' => false, 'ConfirmEmail' => false, 'asOptOut' => false, 'forceOptIn' => false,
    'replaceGroups' => false, 'idConfirmNL' => 0,
])->NewImportProcessResult;
preg_match('/<ReturnCode>(-?\d+)<\/ReturnCode>/', $created, $match);
$process = (int) $match[1];
$started = $client->StartProcess($list + ['idProcess' => $process])->StartProcessResult;
$deadline = microtime(true) + 30;
do {
    $details = $client->GetProcessDetails($list + ['idProcess' => $process])->GetProcessDetailsResult;
    if (strpos($details, '<StatusCode>3</StatusCode>') !== false) {
        break;
    }
    usleep(200000);
} while (microtime(true) < $deadline);
$unknown = $client->GetProcessDetails($list + ['idProcess' => 999999])->GetProcessDetailsResult;
$results['import'] = ['created' => $created, 'started' => $started, 'details' => $details, 'unknown' => $unknown];
echo json_encode($results), "\n";
